// The artifact's OCI image layout on a role ISO (control planes and workers, when images are
// declared): the layout travels on the medium, and a script in the installer initrd copies it
// into the target's OCI_NODE_DIR before the payload is installed, so ISO-installed nodes import
// images offline like the qcow2 images do. Pure: texts in, texts out.
import { OCI_NODE_DIR } from '../image/index';

/** Where the layout lives on the medium (beside kubedos/payload and kubedos/preseed.cfg). */
export const ISO_OCI_DIR = 'kubedos/oci';
/** The copy script at the root of the installer initrd (next to /preseed.cfg). */
export const INITRD_OCI_SCRIPT = 'kubedos-install-oci.sh';

const LATE = 'd-i preseed/late_command string ';

/** Pure: the preseed with the layout copy run first in late_command (the rest unchanged). */
export function withOciLateCommand(preseed: string): string {
  const lines = preseed.split('\n');
  const at = lines.flatMap((l, i) => (l.startsWith(LATE) ? [i] : []));
  if (at.length !== 1) throw new Error(`iso: the preseed has ${at.length} preseed/late_command lines, expected 1 (payload/preseed/base.cfg)`);
  const i = at[0]!;
  lines[i] = `${LATE}sh /${INITRD_OCI_SCRIPT} /target && ${lines[i]!.slice(LATE.length)}`;
  return lines.join('\n');
}

/** Pure: the late-command script. It finds the medium holding the layout whose index.json has
 * the artifact's digest (/cdrom when the netinst installer mounted it; else every CD and disk
 * tried read-only as iso9660: the netboot installer does not mount its medium), copies it and
 * checks every blob against its name. POSIX sh: the installer has busybox only. */
export function renderOciLateScript(indexSha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(indexSha256)) throw new Error(`iso: OCI index digest ${JSON.stringify(indexSha256)} is not a sha256 hex digest`);
  return `#!/bin/sh
# Kube'd'OS: copies the artifact's OCI image layout from the installer medium into the installed
# system (/${OCI_NODE_DIR}), where the containerd role imports it offline. Rendered by
# main/build/iso/oci.ts; run by the installer's late_command as: sh /${INITRD_OCI_SCRIPT} /target
# (a second argument names the layout directory and skips the search; KUBEDOS_CONSOLE, default
# /dev/ttyS0, receives the KUBEDOS-OCI-* markers the install log is read for).
set -eu
CONSOLE=\${KUBEDOS_CONSOLE:-/dev/ttyS0}
TARGET=\${1:?usage: ${INITRD_OCI_SCRIPT} TARGET [LAYOUT_DIR]}
WANT=${indexSha256}
REL=${ISO_OCI_DIR}
DEST="$TARGET/${OCI_NODE_DIR}"
MNT=/tmp/kubedos-medium
MOUNTED=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { if [ -n "$MOUNTED" ]; then umount "$MNT" 2>/dev/null || true; fi; }
trap cleanup EXIT
say() { echo "$1"; echo "$1" >> "$CONSOLE" 2>/dev/null || true; }
fail() { say "KUBEDOS-OCI-FAILED: $1" >&2; exit 1; }
digest() { sha256sum "$1" | cut -d' ' -f1; }
holds() { [ -f "$1/oci-layout" ] && [ -f "$1/index.json" ] && [ "$(digest "$1/index.json")" = "$WANT" ]; }
copy() {
  rm -rf "$DEST"
  mkdir -p "$DEST"
  cp -R "$1/." "$DEST/"
  # The medium is read-only (Rock Ridge): the node's copy is writable by root only.
  chmod -R u+w,go-w "$DEST"
  [ "$(digest "$DEST/index.json")" = "$WANT" ] || fail "$DEST/index.json does not have the artifact's digest sha256:$WANT after the copy from $1"
  for b in "$DEST"/blobs/sha256/*; do
    [ -f "$b" ] || continue
    [ "$(digest "$b")" = "\${b##*/}" ] || fail "blob sha256:\${b##*/} copied from $1 does not match its digest (a damaged medium? write the ISO again from the artifact)"
  done
  say "KUBEDOS-OCI-COPIED index=sha256:$WANT from=$1"
}
if [ -n "\${2:-}" ]; then
  holds "$2" || fail "$2 does not hold an OCI layout whose index.json is sha256:$WANT"
  copy "$2"
  exit 0
fi
if holds "/cdrom/$REL"; then
  copy "/cdrom/$REL"
  exit 0
fi
for m in cdrom sr_mod isofs; do modprobe -q "$m" 2>/dev/null || true; done
mkdir -p "$MNT"
for dev in /dev/sr[0-9]* /dev/sd[a-z] /dev/vd[a-z] /dev/xvd[a-z] /dev/nvme[0-9]n[0-9]; do
  [ -b "$dev" ] || continue
  mount -t iso9660 -o ro "$dev" "$MNT" 2>/dev/null || continue
  MOUNTED=1
  if holds "$MNT/$REL"; then
    copy "$MNT/$REL"
    exit 0
  fi
  umount "$MNT"
  MOUNTED=
done
fail "no medium holds /$REL with index.json sha256:$WANT (tried /cdrom, then every CD and disk read-only as iso9660). Keep the role ISO attached until the install finishes; the netboot installer mounts it only with the isofs/cdrom module udebs on the darksite (kubedos build --installer-udebs)"
`;
}
