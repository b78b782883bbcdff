/** The file's text (served to the browser, embedded in the binary). */
declare const text: string;
export default text;
