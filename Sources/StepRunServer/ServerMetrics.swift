import CoreMetrics
import Metrics
import StepRunCore
import Synchronization

/// The server's swift-metrics instruments; whatever backend the process bootstrapped receives them.
final class ServerMetrics: Sendable {
    private let connections = Gauge(label: "steprund_connections")
    private let inFlightGauge = Gauge(label: "steprund_requests_in_flight")
    private let inFlight = Atomic<Int>(0)
    private let open = Atomic<Int>(0)

    func connectionOpened() {
        connections.record(open.add(1, ordering: .relaxed).newValue)
    }

    func connectionClosed() {
        connections.record(open.subtract(1, ordering: .relaxed).newValue)
    }

    func requestStarted() {
        inFlightGauge.record(inFlight.add(1, ordering: .relaxed).newValue)
    }

    /// Counts a finished request by operation and status code and records its latency.
    func requestFinished(operation: String, code: StatusCode, duration: Duration) {
        inFlightGauge.record(inFlight.subtract(1, ordering: .relaxed).newValue)
        let (counter, timer) = instruments(operation: operation, code: code)
        counter.increment()
        timer.recordNanoseconds(duration.inNanoseconds)
    }

    /// The counter and timer of one operation (and code), made once: asking the metrics backend for
    /// them on every request cost a registry lookup under its lock each time.
    private func instruments(operation: String, code: StatusCode) -> (Counter, Metrics.Timer) {
        byOperation.withLock { table in
            var entry = table[operation] ?? Instruments(
                timer: Metrics.Timer(label: "steprund_request_duration_seconds", dimensions: [("operation", operation)]))
            if let counter = entry.counters[code] {
                return (counter, entry.timer)
            }
            let counter = Counter(label: "steprund_requests_total", dimensions: [("operation", operation), ("code", code.description)])
            entry.counters[code] = counter
            table[operation] = entry
            return (counter, entry.timer)
        }
    }

    private struct Instruments {
        let timer: Metrics.Timer
        var counters: [StatusCode: Counter] = [:]
    }

    private let byOperation = Mutex<[String: Instruments]>([:])
}
