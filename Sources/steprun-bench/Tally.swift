import Histogram
import StepRunCore

/// When a run warms up, when it starts counting and when it stops.
struct RunWindow: Sendable {
    var start: ContinuousClock.Instant
    var measureFrom: ContinuousClock.Instant
    var end: ContinuousClock.Instant

    init(startingAt start: ContinuousClock.Instant, warmup: Duration, duration: Duration) {
        self.start = start
        self.measureFrom = start.advanced(by: warmup)
        self.end = measureFrom.advanced(by: duration)
    }

    var measured: Duration { end - measureFrom }
}

/// Latencies in microseconds, 3 significant digits, up to a minute (slower calls are clamped).
typealias LatencyHistogram = Histogram<UInt32>

func makeLatencyHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
}

/// What one client saw during the measured part of a run. Owned by that client until it finishes.
struct WorkerTally: Sendable {
    /// One histogram per operation (`begin_step`, `complete_step`, …).
    var latencies: [String: LatencyHistogram] = [:]
    var ops = 0
    var errors = 0
    var errorsByCode: [String: Int] = [:]
    var errorSamples: [String] = []
    /// Calls made during warm-up or finished after the window; not counted anywhere else.
    var uncounted = 0

    static let maxSamples = 5

    /// Records one call that started at `started` and was answered at `finished`.
    ///
    /// Only calls answered inside the measured window count, so throughput is completions per second.
    mutating func record(
        operation: String, started: ContinuousClock.Instant, finished: ContinuousClock.Instant, window: RunWindow,
        problem: String?
    ) {
        guard finished >= window.measureFrom, finished <= window.end else {
            uncounted += 1
            return
        }
        ops += 1
        let elapsed = finished - started
        let micros = elapsed.inMicroseconds
        latencies[operation, default: makeLatencyHistogram()].record(UInt64(clamping: min(max(micros, 1), 60_000_000)))
        if let problem {
            errors += 1
            let code = problem.prefix { $0 != ":" }
            errorsByCode[String(code), default: 0] += 1
            if errorSamples.count < Self.maxSamples {
                errorSamples.append("\(operation): \(problem)")
            }
        }
    }

    mutating func merge(_ other: WorkerTally) {
        for (operation, histogram) in other.latencies {
            latencies[operation, default: makeLatencyHistogram()].add(histogram)
        }
        ops += other.ops
        errors += other.errors
        uncounted += other.uncounted
        errorsByCode.merge(other.errorsByCode, uniquingKeysWith: +)
        errorSamples.append(contentsOf: other.errorSamples.prefix(max(0, Self.maxSamples - errorSamples.count)))
    }

    /// Every operation's latencies together.
    var combined: LatencyHistogram {
        var all = makeLatencyHistogram()
        for histogram in latencies.values { all.add(histogram) }
        return all
    }
}

/// Latency summary of one histogram, in microseconds.
struct LatencySummary: Sendable, Codable {
    var count: UInt64
    var p50: UInt64
    var p90: UInt64
    var p99: UInt64
    var p999: UInt64
    var max: UInt64
    var mean: Double

    init(_ histogram: LatencyHistogram) {
        count = histogram.totalCount
        guard count > 0 else {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0; mean = 0
            return
        }
        p50 = histogram.valueAtPercentile(50)
        p90 = histogram.valueAtPercentile(90)
        p99 = histogram.valueAtPercentile(99)
        p999 = histogram.valueAtPercentile(99.9)
        max = histogram.max
        mean = histogram.mean
    }
}
