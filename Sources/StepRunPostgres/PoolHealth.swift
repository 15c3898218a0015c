import Foundation
import Synchronization
import StepRunCore

extension PostgresPool {
    /// Runs the health query so that its caller is answered within `deadline` even when every
    /// connection is stuck (a table lock, a hung database): the query waits for a connection and
    /// runs for at most most of the call's time — a quarter of it, at most 1 s, is kept to
    /// answer (a busy machine's scheduling must not make the answer late) — and is cancelled if it is still running then (`StatementWatch`). A health call
    /// therefore never queues behind a blocked pool for longer than its own deadline; it answers
    /// not serving, saying how busy the pool is.
    func probeHealth(
        deadline: ContinuousClock.Instant?, _ query: @escaping @Sendable (PGConnection) throws(StepRunError) -> Duration
    ) async throws(StepRunError) -> Duration {
        let started = ContinuousClock.now
        let end = deadline ?? started.advanced(by: configuration.defaultTimeout)
        let answerBy = end - min((end - started) / 4, .seconds(1))
        let ran = RanFlag()
        do {
            return try await withConnection(deadline: answerBy) { connection throws(StepRunError) in
                ran.value.store(true, ordering: .relaxed)
                return try query(connection)
            }
        } catch {
            guard case .deadlineExceeded = error else { throw error }
            throw .unavailable(stallReport(waited: answerBy - started, gotConnection: ran.value.load(ordering: .relaxed)))
        }
    }

    private final class RanFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// Why a health query did not finish in time, from what the workers are running.
    func stallReport(waited: Duration, gotConnection: Bool) -> String {
        let (running, longest) = watch.running()
        let size = configuration.poolSize
        let longestText = String(format: "%.1f s", longest.inSeconds)
        let waitedText = "\(waited.inMilliseconds) ms"
        if !gotConnection {
            return "no database connection became free for the health query within \(waitedText) (\(running) of \(size) busy, the longest for \(longestText))"
        }
        return "the health query did not finish within \(waitedText) and was cancelled (a lock on a steprun table, or an overloaded database?)"
    }
}
