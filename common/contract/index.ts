// The workbench contract: one definition, two transports (Electron IPC, WebSocket bridge).
export * from './channels';
export * from './requests';
export * from './deploy';
export * from './lifecycle';
export * from './terminal';
export * from './trust';
export * from './artifacts';
export * from './recovery';
export * from './usb';
export * from './restore';
export * from './events';
export * from './errors';
export * from './validate';
export type { KubedosApi, PreloadBridge } from './api';
export * from './wire';
