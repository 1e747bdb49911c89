// The Hutopia client SDK (an ES module).
export const version = "0.1.0";
