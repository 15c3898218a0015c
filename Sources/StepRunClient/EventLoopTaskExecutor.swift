import NIOCore

/// Runs tasks on one NIO event loop: the loop that a `StepRunClient`'s connection lives on.
///
/// A call from an ordinary task crosses threads twice: the task hands its request to the event
/// loop, and the loop hands the answer back to the Swift concurrency pool. A task started with
/// this executor as its preference (`Task(executorPreference: client.taskExecutor)`,
/// `group.addTask(executorPreference:)`, `withTaskExecutorPreference(_:)`) runs on the loop itself,
/// so its calls are written and resumed on one thread without waking another.
///
/// The loop also reads and writes the connection: work that blocks or computes for long inside such
/// a task holds up every call on that connection. Use it for tasks that mostly call the daemon.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop every job runs on.
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // From the loop itself this only appends to its queue; from elsewhere it wakes the loop.
        eventLoop.execute { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
