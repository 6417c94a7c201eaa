import KeywardenApp
import Hummingbird
import KeywardenStore

/// `/healthz` (the process is up) and `/readyz` (it can serve: database reachable, keyring loaded).
struct HealthController<Context: RequestContext> {
    let app: AppServices

    func addRoutes(to router: Router<Context>) {
        router.get("/healthz") { _, _ in
            HealthStatus(status: "ok")
        }
        router.get("/readyz") { _, _ -> Response in
            app.vault.reloadIfChanged()
            let databaseOK = await app.ping()
            let loaded = app.resolutionReady
            let keys = app.vault.keyring.keys.count
            let body = Readiness(
                status: databaseOK && loaded ? "ready" : "not_ready",
                database: databaseOK ? "ok" : "unreachable",
                resolutionState: loaded ? "loaded" : "loading",
                databaseEngine: app.engine.name,
                keyring: keys > 0 ? "loaded" : "missing",
                masterKeys: keys,
                activeMasterKey: app.vault.activeKeyID
            )
            return try JSONResponse.make(body, status: databaseOK && loaded ? .ok : .serviceUnavailable)
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
        let databaseEngine: String
        let keyring: String
        let masterKeys: Int
        let activeMasterKey: String
    }
}
