export { ServiceRegistry, DEFAULT_ADVERTISE_TTL_MS, DEFAULT_REGISTRY_REALM, type ServiceRegistryComponents, type ServiceRegistryInit } from './registry.js';
export { DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_CACHE_TTL_MS, DEFAULT_NEGATIVE_CACHE_TTL_MS } from './provider-cache.js';
export { DEFAULT_MAX_METADATA_BYTES } from './registration.js';
export { MAX_SERVICE_NAME_LENGTH, isValidServiceName, validateServiceName } from './service-name.js';
export { InvalidServiceNameError, RegistryLookupError, RegistryMetadataError } from './errors.js';
export type { AdvertiseOptions, LocalNode, Provider, RegistryDht, RegistryRecord, RegistryStats } from './types.js';
