// Starting points for `kubedos init` and the editor's "new from template".
import { lab3 } from './lab-3';
import { reference16 } from './reference-16';
import { solo1 } from './solo-1';

export const TEMPLATES = {
  'reference-16': { description: 'The original 16-node topology: master, prometheus, grafana, storage, 3 etcd, 3 control planes, 3 workers, 3 lb, API VIP (Proxmox).', text: reference16.trimStart() },
  'lab-3': { description: 'Master hub + one control plane + one worker, sized for a laptop (local QEMU).', text: lab3.trimStart() },
  'solo-1': { description: 'One hub node with its planes and baseline; Kubernetes off.', text: solo1.trimStart() },
} as const;

export type TemplateName = keyof typeof TEMPLATES;
export const TEMPLATE_NAMES = Object.keys(TEMPLATES) as TemplateName[];

export function isTemplateName(name: string): name is TemplateName {
  return Object.hasOwn(TEMPLATES, name);
}
