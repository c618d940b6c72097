export * from './liveness.js';
