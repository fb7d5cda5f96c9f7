// The one confirmation of the workbench before something that cannot be taken back (destroy a
// cluster, erase a disk, revoke a node, discard edits): a title naming what will happen, the
// details (what goes, how many), optionally a name to type before the button works, and cancel /
// confirm. A modal of its own, or `inline` inside a dialog that is already open (a second modal
// would hide what is being confirmed).
import { Alert, Button, Group, Modal, Stack, TextInput } from '@mantine/core';
import type { MantineColor, MantineSize } from '@mantine/core';
import type { ReactNode } from 'react';
import { useEffect, useState } from 'react';

export interface ConfirmActionProps {
  opened: boolean;
  /** What will happen, as a question: "Destroy cluster lab-3 on qemu-local?" */
  title: ReactNode;
  /** The details: what goes, how many, what stays. */
  children?: ReactNode;
  /** The confirm button works only once this is typed (a cluster's name). */
  typeToConfirm?: string;
  confirmLabel: ReactNode;
  confirmColor?: MantineColor;
  confirmIcon?: ReactNode;
  cancelLabel?: string;
  onConfirm: () => void;
  onCancel: () => void;
  /** The action is running: the confirm button spins, nothing can be cancelled or closed. */
  running?: boolean;
  /** The action cannot be confirmed yet (what it would act on is still being read, or cannot be). */
  disabled?: boolean;
  /** Inside another dialog: an alert in place of a modal. */
  inline?: boolean;
  modalSize?: MantineSize;
  testId?: string;
  confirmTestId?: string;
  typeTestId?: string;
}

export function ConfirmAction(p: ConfirmActionProps) {
  const [typed, setTyped] = useState('');
  // A name typed for one opening does not carry over to the next.
  useEffect(() => {
    if (!p.opened) setTyped('');
  }, [p.opened]);
  const cancel = (): void => {
    if (!p.running) p.onCancel();
  };
  const body = (
    <Stack gap="xs">
      {p.children}
      {p.typeToConfirm !== undefined && <TextInput label={`Type ${p.typeToConfirm} to confirm`} value={typed} onChange={(e) => setTyped(e.currentTarget.value)} disabled={p.running} data-testid={p.typeTestId} />}
      <Group justify="flex-end" gap="xs" mt={4}>
        <Button variant="default" disabled={p.running} onClick={cancel}>
          {p.cancelLabel ?? 'Cancel'}
        </Button>
        <Button color={p.confirmColor ?? 'red'} leftSection={p.confirmIcon} loading={p.running} disabled={p.disabled || (p.typeToConfirm !== undefined && typed !== p.typeToConfirm)} onClick={p.onConfirm} data-testid={p.confirmTestId}>
          {p.confirmLabel}
        </Button>
      </Group>
    </Stack>
  );
  if (p.inline) {
    if (!p.opened) return null;
    return (
      <Alert color={p.confirmColor ?? 'red'} title={p.title} data-testid={p.testId}>
        {body}
      </Alert>
    );
  }
  return (
    <Modal opened={p.opened} onClose={cancel} closeOnClickOutside={!p.running} closeOnEscape={!p.running} title={<b>{p.title}</b>} size={p.modalSize ?? 'md'} centered data-testid={p.testId}>
      {body}
    </Modal>
  );
}
