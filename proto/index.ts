/** The cluster contract shared by proxy/, agent/ and the CLI. Neither side imports the other. */
export * from './keyspace';
export * from './topology';
export * from './member';
export * from './operations';
export * from './history';
export * from './database-catalog';
export * from './audit';
export * from './proxy-presence';
