// Text assets imported with `with { type: 'text' }` are embedded by `bun build --compile`.
declare module '*.sql' {
  const text: string;
  export default text;
}
// Native libraries imported with `with { type: 'file' }` resolve to a path (embedded when compiled).
declare module '*.so' {
  const path: string;
  export default path;
}
