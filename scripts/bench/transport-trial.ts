/**
 * One trial of the `transport` scenario with both ends in one process, in a
 * process of its own: runs the trial named by the first argument for the
 * seconds given by the second and prints its figures as one JSON object.
 */
import { trials } from './transport.js';

const [name, seconds] = process.argv.slice(2);
const trial = name === undefined ? undefined : trials[name];
if (trial === undefined) {
  process.stderr.write(`usage: transport-trial.js <${Object.keys(trials).join('|')}> <seconds>\n`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(await trial(Number(seconds))));
process.exit(0);
