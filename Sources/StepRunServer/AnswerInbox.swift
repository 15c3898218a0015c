import StepRunWire
import Synchronization

/// Answers finished on other threads (pool threads) for one connection, waiting for the hop to its
/// event loop. Only the first answer posted after a hop schedules one; that hop takes them all, so
/// the answers of one group commit cost the connection one task and one flush, not one of each per
/// answer.
final class AnswerInbox: Sendable {
    private let answers = Mutex<[(slot: UInt64, response: ResponseFrame)]>([])

    /// Adds an answer; true if it is the first since the last `take`, so a hop must be scheduled.
    func post(slot: UInt64, _ response: ResponseFrame) -> Bool {
        answers.withLock { answers in
            answers.append((slot, response))
            return answers.count == 1
        }
    }

    /// Removes and returns every posted answer, oldest first.
    func take() -> [(slot: UInt64, response: ResponseFrame)] {
        answers.withLock { answers in
            var taken: [(slot: UInt64, response: ResponseFrame)] = []
            swap(&taken, &answers)
            return taken
        }
    }
}
