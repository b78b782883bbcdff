// Text assets imported with `with { type: 'text' }` are embedded by `bun build --compile`.
declare module '*.sql' {
  const text: string;
  export default text;
}
