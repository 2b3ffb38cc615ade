// Prints ECMAScript's Number.prototype.toString for IEEE 754 doubles given as
// 16 hex digits, one per line on stdin: the reference for RFC 8785 numbers.
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const view = new DataView(new ArrayBuffer(8));
for (const hex of lines) {
  view.setBigUint64(0, BigInt("0x" + hex));
  console.log(String(view.getFloat64(0)));
}
