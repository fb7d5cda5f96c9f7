// The Monaco editor bound to the spec store: typing updates the store; opening a file or a
// template replaces the model; parseSpec diagnostics become markers at their line:col.
import { useComputedColorScheme } from '@mantine/core';
import { useEffect, useRef } from 'react';
import type { editor as MonacoEditor } from 'monaco-editor';
import type { Diagnostic } from '../../../common/spec/index';
import { analysisStore } from '../analysis/store';
import { MODEL_URI, setupMonaco } from './monaco-setup';
import { specStore } from './store';

export const MARKER_OWNER = 'kubedos';

export function SpecEditor() {
  const host = useRef<HTMLDivElement>(null);
  const editorRef = useRef<MonacoEditor.IStandaloneCodeEditor | null>(null);
  const scheme = useComputedColorScheme('dark');

  useEffect(() => {
    if (!host.current) return;
    const monaco = setupMonaco();
    const model = monaco.editor.getModel(MODEL_URI) ?? monaco.editor.createModel(specStore.getState().text, 'yaml', MODEL_URI);
    const editor = monaco.editor.create(host.current, {
      model,
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 13,
      tabSize: 2,
      insertSpaces: true,
      scrollBeyondLastLine: false,
      renderWhitespace: 'boundary',
      ariaLabel: 'ClusterSpec YAML editor',
      quickSuggestions: { other: true, comments: false, strings: true },
      fixedOverflowWidgets: true,
    });
    editorRef.current = editor;
    let applying = false;
    const change = model.onDidChangeContent(() => {
      if (!applying) specStore.getState().setText(model.getValue());
    });
    const setMarkers = (diagnostics: Diagnostic[]): void => {
      monaco.editor.setModelMarkers(
        model,
        MARKER_OWNER,
        diagnostics.map((d) => ({
          severity: d.severity === 'error' ? monaco.MarkerSeverity.Error : d.severity === 'warning' ? monaco.MarkerSeverity.Warning : monaco.MarkerSeverity.Info,
          message: d.message,
          source: d.path,
          code: d.code,
          startLineNumber: d.line,
          startColumn: d.column,
          endLineNumber: d.endLine,
          // A zero-width range would not show a squiggle: cover at least one character.
          endColumn: d.endLine === d.line && d.endColumn <= d.column ? d.column + 1 : d.endColumn,
        })),
      );
    };
    setMarkers(analysisStore.getState().diagnostics);
    const unAnalysis = analysisStore.subscribe((s, prev) => {
      if (s.diagnostics !== prev.diagnostics && s.text === model.getValue()) setMarkers(s.diagnostics);
    });
    const unSpec = specStore.subscribe((s, prev) => {
      if (s.loadNonce !== prev.loadNonce && s.text !== model.getValue()) {
        applying = true;
        model.setValue(s.text);
        applying = false;
        editor.setScrollTop(0);
      }
      if (s.reveal && s.reveal !== prev.reveal) {
        editor.revealLineInCenter(s.reveal.line);
        editor.setPosition({ lineNumber: s.reveal.line, column: s.reveal.column });
        editor.focus();
      }
    });
    return () => {
      unAnalysis();
      unSpec();
      change.dispose();
      editor.dispose();
      editorRef.current = null;
    };
  }, []);

  useEffect(() => {
    setupMonaco().editor.setTheme(scheme === 'dark' ? 'vs-dark' : 'vs');
  }, [scheme]);

  return <div ref={host} data-testid="spec-editor" style={{ position: 'absolute', inset: 0 }} />;
}
