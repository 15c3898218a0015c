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
        Counter(label: "steprund_requests_total", dimensions: [("operation", operation), ("code", code.description)]).increment()
        let nanoseconds = duration.inNanoseconds
        Metrics.Timer(label: "steprund_request_duration_seconds", dimensions: [("operation", operation)]).recordNanoseconds(nanoseconds)
    }
}
