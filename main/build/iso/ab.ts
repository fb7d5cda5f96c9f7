// The A/B disk of docs/upgrades.md on a role ISO (spec.upgrades.diskLayout: ab): the preseed's
// partman recipe lays out the same four partitions as the qcow2 (main/upgrade/ab-layout.ts: ESP,
// root A, root B, data; the same order, file systems and labels, the sizes of abPartitions), the
// installer installs into root A, root B is formatted empty with its label, data is mounted at
// /var/lib/kubedos; a script in the installer initrd (late_command) then gives the GPT entries the
// qcow2's names and types and installs the files the image build puts in both slots (abRootFiles
// and AB_ESP_PLACES of ../image/ab.ts) and kubedos.env (grub-editenv, kubedos_active=A).
// The default layout's ISO is untouched by this file. Pure: texts in, texts out.
import { AB_LABELS, abPartitions, GPT_TYPES, type AbLayoutInput } from '../../upgrade/ab-layout';
import { AB_MIN_DATA_MIB } from '../../../common/upgrade/ab-size';
import { AB_DATA_MOUNT, AB_ENV_FILE, AB_ESP_PLACES, AB_INITIAL_ENV, AB_UNIT_WANTS, renderAbFstab, type AbRootFile } from '../image/ab';
import type { PayloadFile } from '../payload/render';

/** The script at the root of the installer initrd (next to /preseed.cfg), and its files. */
export const INITRD_AB_SCRIPT = 'kubedos-install-ab.sh';
export const INITRD_AB_DIR = 'kubedos-ab';
/** Replaced by the script with the ESP's FAT volume id (partman's mkfs.fat picks it). */
const ESP_ID = '@ESP_ID@';

const LATE = 'd-i preseed/late_command string ';
const RECIPE = /^d-i partman-auto\/(expert_recipe|choose_recipe) /;

/** partman-auto's sizes are decimal megabytes: the smallest whole number of them holding `mib` MiB. */
export function partmanMB(mib: number): number {
  return Math.ceil((mib * 1024 * 1024) / 1_000_000);
}

const LABEL_OF = { esp: undefined, 'root-a': AB_LABELS.rootA, 'root-b': AB_LABELS.rootB, data: AB_LABELS.data } as const;

/** Pure: partman's expert_recipe of the A/B disk. ESP and both roots fixed (min = priority = max),
 * data the rest of the disk (max -1; its priority the plan's data size, abDataMiB), in
 * abPartitions' order. Root B is formatted with no mount point. */
export function renderAbPartmanRecipe(o: AbLayoutInput): string {
  const parts = abPartitions(o).map((p) => {
    const mib = p.sectors / 2048;
    const label = LABEL_OF[p.name];
    const fs = `method{ format } format{ } use_filesystem{ } filesystem{ ext4 } label{ ${label} }`;
    switch (p.name) {
      case 'esp':
        return `${partmanMB(mib)} ${partmanMB(mib)} ${partmanMB(mib)} free $iflabel{ gpt } $reusemethod{ } method{ efi } format{ } .`;
      case 'root-a':
        return `${partmanMB(mib)} ${partmanMB(mib)} ${partmanMB(mib)} ext4 $primary{ } $bootable{ } ${fs} mountpoint{ / } .`;
      case 'root-b':
        return `${partmanMB(mib)} ${partmanMB(mib)} ${partmanMB(mib)} ext4 $primary{ } ${fs} .`;
      case 'data':
        return `${partmanMB(AB_MIN_DATA_MIB)} ${partmanMB(mib)} -1 ext4 ${fs} mountpoint{ ${AB_DATA_MOUNT} } .`;
    }
  });
  return `kubedos-ab :: ${parts.join(' ')}`;
}

/** Pure: the preseed with the A/B recipe in place of the role's and the A/B install run first in
 * late_command. Everything else byte for byte as rendered. */
export function withAbPreseed(preseed: string, layout: AbLayoutInput): string {
  const lines = preseed.split('\n');
  const late = lines.flatMap((l, i) => (l.startsWith(LATE) ? [i] : []));
  if (late.length !== 1) throw new Error(`iso: the preseed has ${late.length} preseed/late_command lines, expected 1 (payload/preseed/base.cfg)`);
  const i = late[0]!;
  lines[i] = `${LATE}sh /${INITRD_AB_SCRIPT} /target /${INITRD_AB_DIR} && ${lines[i]!.slice(LATE.length)}`;
  const kept = lines.filter((l) => !RECIPE.test(l));
  if (lines.length - kept.length !== (preseed.includes('partman-auto/expert_recipe ') ? 2 : 1)) throw new Error('iso: the role preseed has no single partman-auto recipe to replace (payload/preseed/roles/ROLE.cfg)');
  while (kept.at(-1) === '') kept.pop();
  return [
    ...kept,
    `# A/B disk (spec.upgrades.diskLayout: ab, docs/upgrades.md): ESP, root A (installed), root B (formatted empty), data at ${AB_DATA_MOUNT}.`,
    `d-i partman-auto/expert_recipe string ${renderAbPartmanRecipe(layout)}`,
    'd-i partman-auto/choose_recipe select kubedos-ab',
    '# Root B has no mount point until an upgrade writes it.',
    'd-i partman-basicfilesystems/no_mount_point boolean false',
    '',
  ].join('\n');
}

const enc = new TextEncoder();

/** Pure: the files under /kubedos-ab of the installer initrd: root/ (abRootFiles and the fstab,
 * whose ESP id the script fills in) and esp/ (AB_ESP_PLACES). */
export function abInstallerFiles(rootFiles: readonly AbRootFile[], espSources: Readonly<Record<string, string>>): PayloadFile[] {
  const files: PayloadFile[] = [
    ...rootFiles.map((f) => ({ path: `${INITRD_AB_DIR}/root/${f.path}`, data: enc.encode(f.text), mode: f.mode })),
    { path: `${INITRD_AB_DIR}/root/etc/fstab`, data: enc.encode(renderAbFstab(ESP_ID)), mode: 0o644 },
    ...AB_ESP_PLACES.map(([file, place]) => {
      const text = espSources[file];
      if (text === undefined) throw new Error(`iso: payload/upgrade/${file} was not read`);
      return { path: `${INITRD_AB_DIR}/esp/${place}`, data: enc.encode(text), mode: 0o644 };
    }),
  ];
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Pure: the late-command script. POSIX sh (the installer has busybox; sfdisk, e2label, blkid and
 * grub-editenv are the installed system's, run in it with chroot). KUBEDOS_AB_HOST_TOOLS=1 runs
 * them from PATH instead (the loop-device test). */
export function renderAbLateScript(layout: AbLayoutInput): string {
  const parts = abPartitions(layout);
  const table = parts.map((p, n) => `${n + 1} ${p.name} ${p.type} ${p.sectors} ${LABEL_OF[p.name] ?? '-'}`).join('\n');
  const env = Object.entries(AB_INITIAL_ENV).map(([k, v]) => `${k}=${v}`).join(' ');
  const wants = AB_UNIT_WANTS.map(([u, t]) => `want ${u} ${t}`).join('\n');
  if (parts[0]?.type !== GPT_TYPES.esp || parts.length !== 4) throw new Error('iso: the A/B layout is not ESP + three partitions');
  return `#!/bin/sh
# Kube'd'OS: the A/B disk's half the installer does not do (docs/upgrades.md). Rendered by
# main/build/iso/ab.ts; run by the installer's late_command as:
#   sh /${INITRD_AB_SCRIPT} /target /${INITRD_AB_DIR}
# Root A is mounted at TARGET, the ESP at TARGET/boot/efi, data at TARGET${AB_DATA_MOUNT}.
set -eu
CONSOLE=\${KUBEDOS_CONSOLE:-/dev/ttyS0}
TARGET=\${1:?usage: ${INITRD_AB_SCRIPT} TARGET SRC}
SRC=\${2:?usage: ${INITRD_AB_SCRIPT} TARGET SRC}
say() { echo "$1"; echo "$1" >> "$CONSOLE" 2>/dev/null || true; }
fail() { say "KUBEDOS-AB-FAILED: $1" >&2; exit 1; }
# The installed system's tools (the installer has none of sfdisk and grub-editenv).
tool() {
  if [ "\${KUBEDOS_AB_HOST_TOOLS:-}" = 1 ]; then "$@"
  elif command -v in-target >/dev/null 2>&1 && [ "$TARGET" = /target ]; then in-target "$@"
  else chroot "$TARGET" "$@"; fi
}
# A path of the installed system as tool() sees it.
inroot() { if [ "\${KUBEDOS_AB_HOST_TOOLS:-}" = 1 ]; then echo "$TARGET$1"; else echo "$1"; fi; }

dev=$(awk -v t="$TARGET" '$2 == t { d = $1 } END { print d }' /proc/mounts)
[ -b "$dev" ] || fail "no block device is mounted at $TARGET (found '$dev')"
case "$dev" in
  *[0-9]p[0-9]*) disk=\${dev%p*}; pfx=\${disk}p ;;
  *) disk=$(echo "$dev" | sed 's/[0-9]*$//'); pfx=$disk ;;
esac
[ "$dev" = "\${pfx}2" ] || fail "root A ($TARGET) is $dev, not partition 2 of $disk: partman did not lay out the A/B recipe"
[ ! -b "\${pfx}5" ] || fail "$disk has more than four partitions"

# number name GPT-type sectors(at least) label
while read -r n name type sectors label; do
  part=\${pfx}$n
  [ -b "$part" ] || fail "$disk has no partition $n ($name)"
  got=$(cat "/sys/class/block/\${part##*/}/size")
  [ "$got" -ge "$sectors" ] || fail "partition $n ($name) of $disk has $got sectors, the A/B layout needs $sectors"
  tool sfdisk --quiet --no-reread --no-tell-kernel --part-type "$disk" "$n" "$type" >/dev/null 2>&1 || fail "sfdisk could not set the type of partition $n ($name) of $disk"
  tool sfdisk --quiet --no-reread --no-tell-kernel --part-label "$disk" "$n" "$name" >/dev/null 2>&1 || fail "sfdisk could not name partition $n of $disk $name"
  if [ "$label" != - ]; then tool e2label "$part" "$label" || fail "could not label $part $label"; fi
done <<'EOF'
${table}
EOF

esp=$(tool blkid -s UUID -o value "\${pfx}1") || fail "blkid could not read the ESP's id (\${pfx}1)"
[ -n "$esp" ] || fail "the ESP (\${pfx}1) has no file system id"
cp -R "$SRC/root/." "$TARGET/"
sed "s/${ESP_ID}/$esp/" "$SRC/root/etc/fstab" > "$TARGET/etc/fstab"
want() {
  mkdir -p "$TARGET/etc/systemd/system/$2.wants"
  ln -sf "/etc/systemd/system/$1" "$TARGET/etc/systemd/system/$2.wants/$1"
}
${wants}
mkdir -p "$TARGET${AB_DATA_MOUNT}"
# grub-ab.cfg boots the slot's /vmlinuz and /initrd.img (Debian's kernel package makes them).
for f in vmlinuz initrd.img; do
  [ -e "$TARGET/$f" ] || fail "$TARGET/$f is missing: GRUB could not boot root A"
done
mkdir -p "$TARGET/boot/efi"
cp -R "$SRC/esp/." "$TARGET/boot/efi/"
rm -f "$TARGET/boot/efi/${AB_ENV_FILE}"
envfile=$(inroot "/boot/efi/${AB_ENV_FILE}")
tool grub-editenv "$envfile" create || fail "grub-editenv could not create /boot/efi/${AB_ENV_FILE}"
# shellcheck disable=SC2086 # one word per variable
tool grub-editenv "$envfile" set ${env} || fail "grub-editenv could not set ${env}"
say "KUBEDOS-AB-INSTALLED disk=$disk active=A"
`;
}
