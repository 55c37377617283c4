/**
 * Prints one plain closing line, `N passed, N failed, N skipped`, that any CI log reader
 * understands. It is written when the process exits so that it comes after jest's own
 * summary. (A jest reporter must be JavaScript with a default export.)
 */
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const line = `${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests + results.numTodoTests} skipped\n`;
    process.once('exit', () => process.stderr.write(line));
  }
}
