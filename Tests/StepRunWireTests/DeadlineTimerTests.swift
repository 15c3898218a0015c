import NIOCore
import StepRunWire
import Testing

/// Arming and firing are covered end to end: ConnectionLimitsTests.mixedDeadlines (daemon) and
/// ClientTests.callsExpireInDeadlineOrder (client).
@Suite("One deadline timer per connection")
struct DeadlineTimerTests {
    @Test("due splits off the expired calls, earliest first, and names the next deadline")
    func dueSplitsExpiredFromWaiting() {
        let now = NIODeadline.now()
        let deadlines: [(key: String, deadline: NIODeadline)] = [
            ("late", now + .seconds(5)), ("second", now - .milliseconds(10)), ("next", now + .seconds(1)),
            ("first", now - .seconds(1)), ("exactly now", now),
        ]
        let (expired, next) = DeadlineTimer.due(deadlines, now: now)
        #expect(expired == ["first", "second", "exactly now"])
        #expect(next == now + .seconds(1))
        #expect(DeadlineTimer.due([(key: "a", deadline: now - .seconds(1))], now: now).next == nil)
    }
}
