// A set of non-negative integer ids (up to 2^53) in one flat table: open addressing with linear probing and
// backward-shift deletion. A Set of numbers keeps each id beyond the small-integer range (update ids are ~10^11) as
// a heap number of its own, one allocation per id that outlives the young generation; this table allocates nothing.

const EMPTY = -1;

export class IdTable {
  private readonly slots: Float64Array;
  private readonly mask: number;
  private count = 0;

  /** Room for `capacity` ids, in a table of at least four times as many slots (short probe runs). */
  constructor(readonly capacity: number) {
    let size = 8;
    while (size < capacity * 4) size *= 2;
    this.slots = new Float64Array(size).fill(EMPTY);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The id's home slot: both 32-bit halves mixed (ids run up by one, and their high half matters past 2^32). */
  private home(id: number): number {
    const low = id >>> 0;
    const high = (id / 4_294_967_296) >>> 0;
    return (Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> 0) & this.mask;
  }

  has(id: number): boolean {
    if (!(id >= 0)) return false; // never an id, and -1 marks an empty slot
    const s = this.slots;
    for (let i = this.home(id); ; i = (i + 1) & this.mask) {
      const v = s[i]!;
      if (v === id) return true;
      if (v === EMPTY) return false;
    }
  }

  add(id: number): void {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`IdTable: not an id: ${id}`);
    const s = this.slots;
    let i = this.home(id);
    for (; s[i] !== EMPTY; i = (i + 1) & this.mask) if (s[i] === id) return;
    if (this.count >= this.capacity) throw new RangeError(`IdTable: full (${this.capacity} ids)`);
    s[i] = id;
    this.count++;
  }

  delete(id: number): void {
    if (!(id >= 0)) return;
    const s = this.slots;
    const mask = this.mask;
    let i = this.home(id);
    for (; s[i] !== id; i = (i + 1) & mask) if (s[i] === EMPTY) return;
    // Move later ids of the probe run back into the hole when their home does not lie after it (cyclically).
    for (let j = (i + 1) & mask; s[j] !== EMPTY; j = (j + 1) & mask) {
      const h = this.home(s[j]!);
      const stays = i <= j ? i < h && h <= j : i < h || h <= j;
      if (!stays) {
        s[i] = s[j]!;
        i = j;
      }
    }
    s[i] = EMPTY;
    this.count--;
  }
}
