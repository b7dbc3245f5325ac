/** The HA decision of the agent: pure functions of an observed snapshot. The loop that observes and acts lives elsewhere. */
export * from './steps';
export * from './config';
export * from './observation';
export * from './candidate';
export * from './decision';
export * from './ops';
export { decide } from './decide';
export { formatDuration } from '../../common/wording';
