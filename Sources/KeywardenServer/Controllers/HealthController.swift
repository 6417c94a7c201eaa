import KeywardenApp
import Hummingbird
import KeywardenStore

/// `/healthz` (the process is up) and `/readyz` (it can serve: the database answered the change follower within 2 s,
/// what it holds confirmed current within the staleness bound, keyring loaded). `/readyz` does not touch the database
/// itself: it answers at once whatever the database does, however often it is asked.
struct HealthController<Context: RequestContext> {
    let app: AppServices

    func addRoutes(to router: Router<Context>) {
        router.get("/healthz") { _, _ in
            HealthStatus(status: "ok")
        }
        router.get("/readyz") { _, _ -> Response in
            app.vault.localKeyring?.reloadIfChanged()
            let databaseOK = await app.ping()
            let loaded = app.resolutionReady
            let current = app.isCurrent
            let keys = 1 + app.vault.custodian.decryptOnlyKeyIDs.count
            let ready = databaseOK && loaded && current
            let body = Readiness(
                status: ready ? "ready" : "not_ready",
                database: databaseOK ? "ok" : "unreachable",
                resolutionState: loaded ? "loaded" : "loading",
                changes: current ? "current" : "behind",
                confirmedSecondsAgo: app.staleness.sinceConfirmed.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 },
                stalenessBoundSeconds: Int(app.staleness.bound.components.seconds),
                databaseEngine: app.engine.name,
                keyring: keys > 0 ? "loaded" : "missing",
                masterKeys: keys,
                activeMasterKey: app.vault.activeKeyID
            )
            var response = try JSONResponse.make(body, status: ready ? .ok : .serviceUnavailable)
            if !ready { response.headers[.retryAfter] = "\(StoreError.retryAfterSeconds)" }
            return response
        }
    }

    struct HealthStatus: ResponseEncodable {
        let status: String
    }

    struct Readiness: Encodable {
        let status: String
        let database: String
        /// `loaded` once the platform's part of resolution is in memory.
        let resolutionState: String
        /// `current` while a pass of the change log confirmed, within the staleness bound, that what is held is current;
        /// `behind` otherwise (the gateway then refuses calls with `store_unavailable`).
        let changes: String
        let confirmedSecondsAgo: Double?
        let stalenessBoundSeconds: Int
        let databaseEngine: String
        let keyring: String
        let masterKeys: Int
        let activeMasterKey: String
    }
}
