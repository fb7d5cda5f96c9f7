// Every CLI command, in the order `kubedos --help` lists them. Add one import + one entry per command.
import type { CliCommand } from '../command';
import { buildCommand } from './build';
import { lockCommand } from './lock';
import { cacheCommand } from './cache';
import { verifyCommand } from './verify';
import { deployCommand } from './deploy';
import { doctorCommand } from './doctor';
import { drillCommand } from './drill';
import { healCommand } from './heal';
import { initCommand } from './init';
import { destroyCommand, startCommand, stopCommand } from './lifecycle';
import { planCommand } from './plan';
import { provisionCommand } from './provision';
import { recoveryKeyCommand } from './recovery-key';
import { restoreCommand } from './restore';
import { schemaCommand } from './schema';
import { serveCommand } from './serve';
import { sshCommand } from './ssh';
import { trustCommand } from './trust';
import { statusCommand } from './status';
import { upgradeCommand } from './upgrade';
import { usbCommand } from './usb';
import { validateCommand } from './validate';
import { wiringCommand } from './wiring';

export const COMMANDS: CliCommand[] = [
  initCommand,
  validateCommand,
  planCommand,
  provisionCommand,
  buildCommand,
  lockCommand,
  verifyCommand,
  recoveryKeyCommand,
  restoreCommand,
  cacheCommand,
  usbCommand,
  deployCommand,
  stopCommand,
  startCommand,
  destroyCommand,
  upgradeCommand,
  statusCommand,
  sshCommand,
  trustCommand,
  drillCommand,
  healCommand,
  doctorCommand,
  schemaCommand,
  serveCommand,
  wiringCommand,
];
