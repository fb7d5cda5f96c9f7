// Sizes for people: binary units with one decimal ("1.5 GiB"), the one formatter for files,
// uploads and caches (disk vendors' decimal sizes are a separate, deliberate format: main/usb).
export function fmtBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
