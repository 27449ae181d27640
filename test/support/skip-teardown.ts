// A file that ends by itself leaves through process.exit() from its last 'exit' listener, not
// through Node's environment teardown: that teardown (FreeEnvironment -> CleanupHandles) closes
// every handle left and loops until all are closed, and on Node 26.10 it sometimes never ends. A
// test file's process then spun at 100% CPU after every verdict was written (gdb: uv_run in
// CleanupHandles, the loop empty but for an open TCP handle, shut and at EOF, that nothing
// closes), the runner waited for its exit forever, and CI ran out of its 90 minutes inside
// test/mail/hardening-faults.test.ts (stop 42; here 1 run of that file in 6, and 0 in 10 with this).
// At a natural exit the loop is empty, so every verdict and log line has been written by then;
// process.exit() in an 'exit' listener skips the teardown (it goes straight to the C exit) with
// the exit code already set. Every 'exit' listener the file registered (a child process killed on
// exit, say) runs first.
// What the relay and the operator do on their own: they leave through process.exit() too
// (relay/main.ts, operator/main.ts), never through the teardown.
//
// Preloaded with exit-guard.ts into every test file's process, and alone into the end-to-end files'
// (scripts/run-tests.mjs).

// An exception nothing catches emits 'exit' before Node prints it: leaving there would end the
// process with its exit code but without the stack on stderr (review of this file, session 21).
// Such an exit goes through the teardown, as before.
let fatal = false;
process.on("uncaughtExceptionMonitor", () => {
  if (process.listenerCount("uncaughtException") === 0) fatal = true;
});

// the file's own 'exit' listeners after this one (registered later: it is preloaded) run first,
// then the process leaves
function leave(code: number): void {
  if (fatal) return;
  const listeners = process.listeners("exit");
  for (const l of listeners.slice(listeners.indexOf(leave) + 1)) l.call(process, code);
  process.exit();
}
process.on("exit", leave);
