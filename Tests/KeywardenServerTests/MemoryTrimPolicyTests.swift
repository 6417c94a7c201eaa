import Testing
@testable import KeywardenServer

/// When freed memory is given back: after calls, while quiet, never while calls run or keep starting.
@Suite("Memory trim policy")
struct MemoryTrimPolicyTests {
    @Test("no trim while idle from the start, under load, or while a long call runs; once a load has ended, at the first quiet look and every other one after, a bounded number of times; activity starts over")
    func quietSpells() {
        var policy = MemoryTrimPolicy(repeatEvery: 2, trimsPerSpell: 3)
        // (started, under way) → trim?
        let looks: [(Int, Int, Bool)] = [
            (0, 0, false),       // idle since the start: nothing was allocated for calls
            (0, 0, false),
            (500, 3, false),     // a load
            (900, 1, false),     // still going
            (900, 1, false),     // no new call, but one (a stream) still runs
            (900, 0, true),      // quiet: give memory back
            (900, 0, false),     // still quiet …
            (900, 0, true),      // … and again every other look (idle vendor connections close later)
            (900, 0, false),
            (900, 0, true),      // the third and last of this spell
            (900, 0, false),
            (900, 0, false),     // rests until calls come again
            (900, 0, false),
            (901, 0, false),     // a call came and went between two looks: activity
            (901, 0, true),      // quiet again: a new spell
            (Int.max, 0, false), // the count at its top …
            (Int.min, 0, false), // … wrapping is a change, never a trap
            (Int.min, 0, true),
        ]
        for (index, (started, underWay, expected)) in looks.enumerated() {
            #expect(policy.look(started: started, underWay: underWay) == expected, "look \(index): started \(started), under way \(underWay)")
        }
        // A load that ended before the first look still counts (the count starts at 0 with the process).
        var early = MemoryTrimPolicy()
        #expect(!early.look(started: 40, underWay: 0) && early.look(started: 40, underWay: 0))
        var every = MemoryTrimPolicy(repeatEvery: 1, trimsPerSpell: 5)
        _ = every.look(started: 1, underWay: 0)
        #expect((0..<5).allSatisfy { _ in every.look(started: 1, underWay: 0) } && !every.look(started: 1, underWay: 0), "every quiet look, five times")
    }
}
