// DOM helpers: every node is built with h() (text is always text: no HTML from strings).

/** h('a', {href: '#/x', class: 'c', onclick: f}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'value') {
      el.value = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replace the children of `el`. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  labelCells(el);
  return el;
}

/**
 * Every cell of the `table.wide` tables in (or around) `root` gets its column's heading as
 * `data-label`: on a phone those tables stack their cells and the CSS shows the label
 * before each value.
 */
export function labelCells(root) {
  const around = root.closest?.('table.wide');
  const tables = around ? [around] : [...(root.querySelectorAll?.('table.wide') ?? [])];
  for (const t of tables) {
    const heads = [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    for (const tr of t.querySelectorAll('tbody tr')) {
      let col = 0;
      for (const td of tr.children) {
        if (heads[col]) td.dataset.label = heads[col];
        col += td.colSpan || 1;
      }
    }
  }
}

/** A message box: kind is 'error', 'info' or 'empty'. */
export function note(kind, ...text) {
  return h('p', { class: `note ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...text);
}
