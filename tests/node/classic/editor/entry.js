// The classic collaborative editor of the "Creating Real-Time Applications"
// chapter: Quill bound to a ShareDB rich-text document over a browser
// WebSocket to the page's own host. Bundled by the browser tests with
// esbuild; written only against the npm packages.
import Quill from 'quill';
import ShareDB from 'sharedb/lib/client';
import richText from 'rich-text';

ShareDB.types.register(richText.type);

const socket = new WebSocket(`ws://${location.host}/`);
const connection = new ShareDB.Connection(socket);
const doc = connection.get('examples', 'richtext');

doc.subscribe((err) => {
  if (err) throw err;
  const quill = new Quill('#editor', { theme: 'snow' });
  quill.setContents(doc.data);
  quill.on('text-change', (delta, oldDelta, source) => {
    if (source === 'user') doc.submitOp(delta, { source: quill });
  });
  doc.on('op', (op, source) => {
    if (source !== quill) quill.updateContents(op);
  });
  // For the tests.
  window.classic = { quill, doc, connection };
  document.body.dataset.ready = 'true';
});
