import { io } from 'socket.io-client';
const url = process.argv[2];
const pid = process.argv[3];
import fs from 'node:fs';
const rss = () => Math.round(Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024) + ' MB';
const once = (s, ev) => new Promise((r) => s.once(ev, r));
console.log('start rss', rss());
// 1) fill the canvas: one client, many long strokes
const w = io(url, { transports: ['websocket'] });
await once(w, 'connect');
let t = Date.now();
let errors = 0;
w.on('error', (e) => { errors++; if (errors < 3) console.log('err', e.code); });
for (let s = 0; s < 210; s++) {
  w.emit('mousemove', { x: 0, y: (s * 4.7) % 1000, drawing: false });
  for (let i = 1; i <= 1000; i++) w.emit('mousemove', { x: i * 1.999, y: ((s * 4.7) + (i % 3)) % 1000, drawing: true });
  await new Promise((r) => setTimeout(r, 20));
}
await new Promise((r) => setTimeout(r, 3000));
console.log('filled in', Date.now() - t, 'ms; errors', errors, 'rss', rss());
// 2) joins of a full canvas
t = Date.now();
const c = io(url, { transports: ['websocket'] });
let parts = 0, bytes = 0;
c.on('canvas', (p) => { parts = p.parts; bytes += JSON.stringify(p).length; });
await once(c, 'peers');
console.log('joined full canvas in', Date.now() - t, 'ms,', parts, 'parts,', bytes, 'bytes; rss', rss());
c.close();
// 3) connect/disconnect cycles
t = Date.now();
for (let i = 0; i < 1000; i++) {
  const s = io(url, { transports: i % 2 ? ['websocket'] : ['polling'], forceNew: true, reconnection: false });
  await once(s, 'connect');
  s.close();
}
console.log('1000 cycles in', Date.now() - t, 'ms; rss', rss());
await new Promise((r) => setTimeout(r, 2000));
const stats = await (await fetch(url + '/stats')).text();
console.log('stats', stats.slice(0, 400));
w.close();
process.exit(0);
