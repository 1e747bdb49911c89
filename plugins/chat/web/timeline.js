// The timeline view: a window of at most WINDOW rows of a MessageList in the
// DOM, however long the room. Scrolling near the top shows older rows (from
// memory, else asks for an older page); near the bottom newer ones. The row
// under the reader's eyes stays where it is while rows come and go.

export const WINDOW = 150;  // rows kept in the DOM at most
const STEP = 50;            // rows added or removed at a time
const EDGE_PX = 600;        // how close to an edge counts as near it
const END_PX = 48;          // how close to the bottom counts as "at the end"

export class Timeline {
  // scroller: the element that scrolls; rows: the <ol> of messages inside it;
  // outbox: the <ol> of own pending posts after it. hooks: renderRow(msg,
  // prev) -> <li>, renderPending(p) -> <li>, needOlder() -> Promise<number added>,
  // needNewer() -> Promise, atEnd(bool).
  constructor(scroller, rows, outbox, hooks) {
    this.scroller = scroller;
    this.rows = rows;
    this.outboxEl = outbox;
    this.hooks = hooks;
    this.list = null;
    this.outbox = null;
    this.start = 0;  // index in list.items of the first row shown
    this.end = 0;    // one past the last
    this.loading = false;
    this._atEnd = false;
    this._ticking = false;
    scroller.addEventListener("scroll", () => {
      if (this._ticking) return;
      this._ticking = true;
      requestAnimationFrame(() => {
        this._ticking = false;
        this.onScroll();
      });
    }, { passive: true });
  }

  // Shows a list, scrolled to its end, or with the row of `focusSeq` in view.
  show(list, outbox, focusSeq = null) {
    this.list = list;
    this.outbox = outbox;
    const n = list.length;
    let at = n;
    if (focusSeq !== null) {
      const i = list.search(focusSeq);
      at = i >= 0 ? i + 1 : -i - 1;
    }
    this.end = Math.min(n, Math.max(at + Math.floor(WINDOW / 3), Math.min(n, WINDOW)));
    this.start = Math.max(0, this.end - WINDOW);
    this.renderAll();
    if (focusSeq !== null && at < n) {
      const row = this.rowFor(list.items[at].seq);
      if (row) this.scroller.scrollTop = Math.max(0, row.offsetTop - this.scroller.clientHeight / 3);
      else this.scrollToEnd();
    } else {
      this.scrollToEnd();
    }
    this.onScroll();
  }

  clear() {
    this.list = null;
    this.outbox = null;
    this.rows.replaceChildren();
    this.outboxEl.replaceChildren();
    this.start = this.end = 0;
  }

  get showsEnd() {
    return !!this.list && this.end >= this.list.length && !this.list.hasNewer;
  }

  rowFor(seq) {
    return this.rows.querySelector(`li[data-seq="${Number(seq)}"]`);
  }

  renderAll() {
    const items = this.list ? this.list.items : [];
    const frag = document.createDocumentFragment();
    for (let i = this.start; i < this.end; i++) frag.append(this.hooks.renderRow(items[i], items[i - 1] || null));
    this.rows.replaceChildren(frag);
    this.renderOutbox();
  }

  renderOutbox() {
    const frag = document.createDocumentFragment();
    if (this.outbox && this.showsEnd) for (const p of this.outbox.items) frag.append(this.hooks.renderPending(p));
    this.outboxEl.replaceChildren(frag);
  }

  // Re-renders the window keeping the reader's place (after edits, deletes,
  // or a change of the list's indices by `shift` rows at the front).
  refresh(shift = 0) {
    if (!this.list) return;
    this.start = Math.max(0, Math.min(this.list.length, this.start + shift));
    this.end = Math.max(this.start, Math.min(this.list.length, this.end + shift));
    const stick = this.nearBottom(END_PX);
    this.keepPlace(() => this.renderAll());
    if (stick && this.showsEnd) this.scrollToEnd();
  }

  // A message was added to the list at index i (a live one, usually last).
  added(i) {
    if (!this.list) return;
    const items = this.list.items;
    if (i < this.start) {
      this.start++;
      this.end++;
      return;
    }
    if (i > this.end) return;  // beyond the window: shown when scrolled to
    const stick = this.nearBottom(END_PX);
    const row = this.hooks.renderRow(items[i], items[i - 1] || null);
    const before = this.rows.children[i - this.start] || null;
    this.rows.insertBefore(row, before);
    this.end++;
    // The row after it may now continue its group.
    if (before && items[i + 1]) before.replaceWith(this.hooks.renderRow(items[i + 1], items[i]));
    if (stick) {
      while (this.end - this.start > WINDOW) {
        this.rows.firstElementChild.remove();
        this.start++;
      }
      this.renderOutbox();
      this.scrollToEnd();
    } else {
      this.renderOutbox();
    }
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  nearBottom(px) {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= px;
  }

  // Runs fn (which changes rows) so that the first row in view stays put.
  keepPlace(fn) {
    const top = this.scroller.scrollTop;
    let anchor = null;
    let offset = 0;
    for (const row of this.rows.children) {
      if (row.offsetTop + row.offsetHeight > top) {
        anchor = row.dataset.seq;
        offset = row.offsetTop - top;
        break;
      }
    }
    fn();
    if (anchor !== null) {
      const row = this.rowFor(anchor);
      if (row) this.scroller.scrollTop = row.offsetTop - offset;
    }
  }

  async onScroll() {
    if (!this.list) return;
    const s = this.scroller;
    if (s.scrollTop < EDGE_PX) {
      if (this.start > 0) this.moveUp();
      else if (this.list.hasOlder && !this.loading) {
        this.loading = true;
        this.rows.setAttribute("aria-busy", "true");
        try {
          const n = await this.hooks.needOlder();
          if (n > 0 && this.list) {
            this.start += n;
            this.end += n;
            this.moveUp();
          }
        } finally {
          this.loading = false;
          this.rows.removeAttribute("aria-busy");
        }
      }
    } else if (this.nearBottom(EDGE_PX)) {
      if (this.end < this.list.length) this.moveDown();
      else if (this.list.hasNewer && !this.loading) {
        this.loading = true;
        try {
          await this.hooks.needNewer();
          if (this.list && this.end < this.list.length) this.moveDown();
        } finally {
          this.loading = false;
        }
      }
    }
    const atEnd = this.showsEnd && this.nearBottom(END_PX);
    if (atEnd !== this._atEnd || atEnd) {
      this._atEnd = atEnd;
      this.hooks.atEnd(atEnd);
    }
  }

  // Shows up to STEP older rows from memory, dropping as many at the bottom
  // as the window needs.
  moveUp() {
    const add = Math.min(STEP, this.start);
    if (!add) return;
    const items = this.list.items;
    this.keepPlace(() => {
      const frag = document.createDocumentFragment();
      for (let i = this.start - add; i < this.start; i++) frag.append(this.hooks.renderRow(items[i], items[i - 1] || null));
      const first = this.rows.firstElementChild;
      this.rows.insertBefore(frag, first);
      // The old first row may now continue the group above it.
      if (first) first.replaceWith(this.hooks.renderRow(items[this.start], items[this.start - 1]));
      this.start -= add;
      while (this.end - this.start > WINDOW) {
        this.rows.lastElementChild.remove();
        this.end--;
      }
      this.renderOutbox();
    });
  }

  moveDown() {
    const add = Math.min(STEP, this.list.length - this.end);
    if (!add) return;
    const items = this.list.items;
    this.keepPlace(() => {
      const frag = document.createDocumentFragment();
      for (let i = this.end; i < this.end + add; i++) frag.append(this.hooks.renderRow(items[i], items[i - 1] || null));
      this.rows.append(frag);
      this.end += add;
      while (this.end - this.start > WINDOW) {
        this.rows.firstElementChild.remove();
        this.start++;
      }
      this.renderOutbox();
    });
  }
}
