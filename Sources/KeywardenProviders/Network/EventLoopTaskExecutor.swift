import NIOCore

/// Runs a task's jobs on one event loop: a gateway call's work stays on the thread of its client's connection, with no
/// hop to the cooperative pool and back for each step (its awaits on the loop's own futures resume in place).
///
/// Used as a task's executor preference (`Task(executorPreference:)`): the task's nonisolated code and the default
/// actors it calls run here; an actor with an executor of its own still runs there. ``VendorConnectionPool`` serves a
/// caller on a loop with that loop's connections.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
