// Modules without their own declarations.
declare module 'monaco-editor/internal/common/workers' {
  import type { editor } from 'monaco-editor';
  export function createWebWorker<T extends object>(opts: { moduleId: string; label?: string; createData?: unknown; host?: unknown; keepIdleModels?: boolean; createWorker?: () => Worker }): editor.MonacoWebWorker<T>;
}
declare module '*?worker' {
  const WorkerConstructor: { new (): Worker };
  export default WorkerConstructor;
}
declare module '*.css';
