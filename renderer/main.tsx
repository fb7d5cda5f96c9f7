// Renderer entry: connect to main (Electron IPC or the WebSocket bridge), then render.
import '@mantine/core/styles.css';
import '@mantine/charts/styles.css';
import '@xyflow/react/dist/style.css';
import '@xterm/xterm/css/xterm.css';
import './app.css';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { boot } from './shell/boot';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(<App />);
void boot();
