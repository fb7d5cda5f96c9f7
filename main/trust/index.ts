export * from './ca';
export * from './enrollment-files';
export * from './identity';
export * from './revocation';
export * from './secret-store';
export * from './token';
export * from './wg-keys';
