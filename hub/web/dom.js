// Elements built from data without HTML: every string a kiosk, an import or a user sent (device ids,
// labels, titles) becomes a text node, so no payload can become markup or script in the educator's
// page. h(tag, attrs, ...children): attrs set as attributes ("on" maps events to handlers, "style"
// maps custom properties and styles through the CSSOM, which the page's CSP allows); children are
// nodes, strings (text) or arrays of them; null and false are skipped. Its own scope: the page's
// scripts share one global scope, where app.js names its own h.
(() => {
"use strict";

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "style") for (const [p, val] of Object.entries(v)) el.style.setProperty(p, val);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

window.emocastDom = { h, append, replace };
})();
