import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Synchronization

/// The parts of resolution this instance holds in memory: the platform's (always), and the workspaces in use (at most
/// `capacity`, the least recently used leaving first; the others are read on their first call). Each part is
/// immutable; a change replaces the part it touched, so a lookup never waits for another workspace's change.
final class ResolutionState: Sendable {
    /// A workspace's part with the sealed secrets of its keys (never opened ones), by `credential id/field`.
    struct WorkspacePart: Sendable {
        let resolution: WorkspaceResolution
        let sealed: [String: SealedSecret]
    }

    /// The platform's part with the sealed secrets of its keys.
    struct PlatformPart: Sendable {
        let resolution: PlatformResolution
        let sealed: [String: SealedSecret]
    }

    /// Where a cached key lives.
    enum Owner: Equatable {
        case workspace(String)
        case platform
    }

    private struct Slot {
        var part: WorkspacePart
        var referenced: Bool
        var ring: Int
    }

    private struct State {
        var platform: PlatformPart?
        var workspaces: [String: Slot] = [:]
        /// The workspace of every cached workspace key.
        var owners: [String: String] = [:]
        /// The clock ring of cached workspace ids (`nil`: a free slot).
        var ring: [String?] = []
        /// Ring slots left free by an invalidation.
        var free: [Int] = []
        var hand = 0
        /// Counts invalidations; a load notes it before reading, so a load that raced a change is not kept.
        var invalidations: UInt64 = 0
        /// The last invalidation of each recently invalidated workspace.
        var touched: [String: UInt64] = [:]
        /// Loads noted before this number are not kept (everything was invalidated, or `touched` was emptied).
        var floor: UInt64 = 0
        /// Counts reads of the platform's part; only the newest read's part is kept.
        var platformReads: UInt64 = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    // MARK: Reading

    var platform: PlatformPart? { state.withLock { $0.platform } }

    /// A cached workspace part (marked as used), or `nil`.
    func workspace(_ id: String) -> WorkspacePart? {
        state.withLock { state in
            guard state.workspaces[id] != nil else { return nil }
            state.workspaces[id]?.referenced = true
            return state.workspaces[id]?.part
        }
    }

    /// How many workspace parts are held.
    var count: Int { state.withLock { $0.workspaces.count } }

    /// The held part of the workspace holding a key, if any.
    func workspace(forCredential id: String) -> WorkspacePart? {
        state.withLock { state in state.owners[id].flatMap { state.workspaces[$0]?.part } }
    }

    // MARK: Loading

    /// The mark to take before reading a part from the database.
    func mark() -> UInt64 { state.withLock { $0.invalidations } }

    /// Keeps a workspace part read after `mark`, unless the workspace changed since (the read may have missed it).
    func insert(_ part: WorkspacePart, readAfter mark: UInt64) {
        let id = part.resolution.id
        state.withLock { state in
            guard mark >= state.floor, (state.touched[id] ?? 0) <= mark else { return }
            if let slot = state.workspaces[id] {
                Self.forgetOwners(of: slot.part, in: &state)
                state.workspaces[id] = Slot(part: part, referenced: true, ring: slot.ring)
            } else {
                let ring = Self.freeSlot(in: &state, capacity: capacity)
                state.ring[ring] = id
                state.workspaces[id] = Slot(part: part, referenced: true, ring: ring)
            }
            for key in part.resolution.keys { state.owners[key.id] = id }
        }
    }

    /// The mark to take before reading the platform's part (a later read makes an earlier one's part stale).
    func beginPlatformRead() -> UInt64 {
        state.withLock { state in
            state.platformReads += 1
            return state.platformReads
        }
    }

    /// Replaces the platform's part, unless a newer read began meanwhile.
    func setPlatform(_ part: PlatformPart, read mark: UInt64) {
        state.withLock { state in
            if state.platformReads == mark { state.platform = part }
        }
    }

    // MARK: Invalidating

    /// Drops a workspace's part; returns it when it was held (so the caller may read it again at once).
    @discardableResult
    func invalidate(workspace id: String) -> WorkspacePart? {
        state.withLock { state in
            state.invalidations += 1
            state.touched[id] = state.invalidations
            if state.touched.count > 10_000 {
                // Forget old invalidations: loads that began before now are not kept.
                state.touched.removeAll(keepingCapacity: true)
                state.floor = state.invalidations
            }
            guard let slot = state.workspaces.removeValue(forKey: id) else { return nil }
            Self.forgetOwners(of: slot.part, in: &state)
            state.ring[slot.ring] = nil
            state.free.append(slot.ring)
            return slot.part
        }
    }

    /// A key changed: drops the part of the workspace holding it and returns where it lives; for a key this
    /// instance cannot place (its workspace is not held), loads in flight are not kept (one of them may be its).
    func invalidate(credential id: String) -> Owner? {
        let owner: Owner? = state.withLock { state in
            if let workspaceID = state.owners[id] { return .workspace(workspaceID) }
            if state.platform?.resolution.credential(id) != nil { return .platform }
            state.invalidations += 1
            state.floor = state.invalidations
            return nil
        }
        if case .workspace(let workspaceID) = owner, invalidate(workspace: workspaceID) == nil { return nil }
        return owner
    }

    /// Drops every workspace part (the platform's stays until it is replaced).
    func invalidateAll() {
        state.withLock { state in
            state.invalidations += 1
            state.floor = state.invalidations
            state.touched.removeAll()
            state.workspaces.removeAll()
            state.owners.removeAll()
            state.ring.removeAll()
            state.free.removeAll()
            state.hand = 0
        }
    }

    // MARK: Housekeeping

    private static func forgetOwners(of part: WorkspacePart, in state: inout State) {
        for key in part.resolution.keys where state.owners[key.id] == part.resolution.id { state.owners[key.id] = nil }
    }

    /// A ring slot for a new part: a free one, else the first not used since the hand last passed (clock eviction).
    private static func freeSlot(in state: inout State, capacity: Int) -> Int {
        if let free = state.free.popLast() { return free }
        if state.ring.count < capacity {
            state.ring.append(nil)
            return state.ring.count - 1
        }
        while true {
            let index = state.hand
            state.hand = (state.hand + 1) % state.ring.count
            guard let id = state.ring[index] else { return index }
            if state.workspaces[id]?.referenced == true {
                state.workspaces[id]?.referenced = false
                continue
            }
            if let slot = state.workspaces.removeValue(forKey: id) { forgetOwners(of: slot.part, in: &state) }
            state.ring[index] = nil
            return index
        }
    }
}
