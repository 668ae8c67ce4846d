// Node's `util` for the browser bundle: sharedb's client needs only
// `inherits` from it, and asks browser users to supply one.

/** Makes `ctor` inherit from `superCtor`, as Node's util.inherits does. */
export function inherits(ctor, superCtor) {
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
  Object.setPrototypeOf(ctor, superCtor);
  ctor.super_ = superCtor;
}

export default { inherits };
