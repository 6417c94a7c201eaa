import Testing
@testable import KeywardenServer

/// When freed memory is given back: after calls, while quiet, never while calls run or keep starting.
@Suite("Memory trim policy")
struct MemoryTrimPolicyTests {
    @Test("no trim at the first look, while idle from the start, under load, or while a long call runs; once a load has ended, at the first quiet look and every other one after; activity starts over")
    func quietSpells() {
        var policy = MemoryTrimPolicy(repeatEvery: 2)
        // (started, under way) → trim?
        let looks: [(Int, Int, Bool)] = [
            (0, 0, false),       // the first look only learns where the count stands
            (0, 0, false),       // idle since the start: nothing was allocated for calls
            (500, 3, false),     // a load
            (900, 1, false),     // still going
            (900, 1, false),     // no new call, but one (a stream) still runs
            (900, 0, true),      // quiet: give memory back
            (900, 0, false),     // still quiet …
            (900, 0, true),      // … and again every other look (idle vendor connections close later)
            (900, 0, false),
            (901, 0, false),     // a call came and went between two looks: activity
            (901, 0, true),      // quiet again
            (Int.max, 0, false), // the count at its top …
            (Int.min, 0, false), // … wrapping is a change, never a trap
            (Int.min, 0, true),
        ]
        for (index, (started, underWay, expected)) in looks.enumerated() {
            #expect(policy.look(started: started, underWay: underWay) == expected, "look \(index): started \(started), under way \(underWay)")
        }
        var every = MemoryTrimPolicy(repeatEvery: 1)
        _ = every.look(started: 0, underWay: 0)
        _ = every.look(started: 1, underWay: 0)
        #expect((0..<5).allSatisfy { _ in every.look(started: 1, underWay: 0) }, "every quiet look")
    }
}
