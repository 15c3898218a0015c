import NIOCore

/// One timer serving the deadlines of every call in flight on a connection, both in the daemon
/// and in the client. Confined to the connection's event loop.
///
/// It is armed for the earliest deadline and not cancelled when calls finish: when it fires, the
/// owner expires what is due (`due(_:now:)`) and re-arms for the next deadline. With the usual
/// equal timeouts it fires about once per timeout rather than once per call, and a call costs a
/// comparison instead of a scheduled task of its own that is nearly always cancelled.
public struct DeadlineTimer {
    private var armed: (task: Scheduled<Void>, at: NIODeadline)?

    public init() {}

    /// Makes sure `fire` runs on `loop` no later than `deadline`: re-arms only when nothing is
    /// armed or the armed timer fires later.
    public mutating func fire(by deadline: NIODeadline, on loop: any EventLoop, _ fire: @escaping () -> Void) {
        if let armed, armed.at <= deadline { return }
        armed?.task.cancel()
        armed = (loop.assumeIsolated().scheduleTask(deadline: deadline, fire), deadline)
    }

    /// Forgets the timer that has just fired; call first thing in `fire`.
    public mutating func fired() {
        armed = nil
    }

    /// Cancels the armed timer (the connection is closing).
    public mutating func cancel() {
        armed?.task.cancel()
        armed = nil
    }

    /// Splits calls into those whose deadline has passed, earliest first (in the order separate
    /// timers would have fired), and the earliest deadline still ahead.
    public static func due<Key>(
        _ deadlines: some Sequence<(key: Key, deadline: NIODeadline)>, now: NIODeadline
    ) -> (expired: [Key], next: NIODeadline?) {
        var expired: [(key: Key, deadline: NIODeadline)] = []
        var next: NIODeadline?
        for entry in deadlines {
            if entry.deadline <= now {
                expired.append(entry)
            } else if next.map({ entry.deadline < $0 }) ?? true {
                next = entry.deadline
            }
        }
        return (expired.sorted { $0.deadline < $1.deadline }.map(\.key), next)
    }
}
