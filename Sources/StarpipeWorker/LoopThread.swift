import Foundation
import Synchronization

/// A named thread that runs a loop beside a slot's job until ``stop()``: the lease keeper's and
/// the deadline watcher's. The loop checks ``isRunning``; ``stop()`` clears it and waits for the
/// thread to end, so nothing the loop does happens after it returns.
final class LoopThread: Sendable {
    private let name: String
    private let running = Mutex(true)
    private let done = DispatchSemaphore(value: 0)

    init(name: String) {
        self.name = name
    }

    /// True until ``stop()`` is called.
    var isRunning: Bool { running.withLock { $0 } }

    /// Runs `body` on the new thread. Call once, before ``stop()``.
    func start(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [done] in
            defer { done.signal() }
            body()
        }
        thread.name = name
        thread.start()
    }

    /// Clears ``isRunning`` and waits for the thread to end. Calling it again does nothing.
    func stop() {
        let wasRunning = running.withLock { running in
            defer { running = false }
            return running
        }
        if wasRunning { done.wait() }
    }
}
