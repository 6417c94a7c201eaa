import Testing
@testable import KeywardenServer

/// When freed memory is given back: once per quiet spell after calls, never while calls run or keep starting.
@Suite("Memory trim policy")
struct MemoryTrimPolicyTests {
    @Test("no trim at the first look, under load, or while a long call runs; one trim once a load has ended; none again until calls come back")
    func oncePerQuietSpell() {
        var policy = MemoryTrimPolicy()
        // (started, under way) → trim?
        let looks: [(Int, Int, Bool)] = [
            (0, 0, false),       // the first look only learns where the count stands
            (0, 0, false),       // idle since the start: nothing was allocated for calls
            (500, 3, false),     // a load
            (900, 1, false),     // still going
            (900, 1, false),     // no new call, but one (a stream) still runs
            (900, 0, true),      // quiet: give memory back once
            (900, 0, false),     // still quiet: not again
            (901, 0, false),     // a call came and went between two looks: activity
            (901, 0, true),      // quiet again
            (Int.max, 0, false), // the count at its top …
            (Int.min, 0, false), // … wrapping is a change, never a trap
            (Int.min, 0, true),
        ]
        for (index, (started, underWay, expected)) in looks.enumerated() {
            #expect(policy.look(started: started, underWay: underWay) == expected, "look \(index): started \(started), under way \(underWay)")
        }
    }
}
