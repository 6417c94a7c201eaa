import Hummingbird
import KeywardenCore

/// `GET /api/v1/providers`: the catalog, each provider with its card fields, models and modalities.
struct CatalogController<Context: RequestContext> {
    let catalog: ProviderCatalog

    func addRoutes(to router: Router<Context>) {
        router.get("/api/v1/providers") { _, _ -> Response in
            try JSONResponse.make(CatalogBody(
                providers: catalog.providers,
                categories: ProviderCategory.allCases.map(\.rawValue),
                modalities: Modality.allCases.map(\.rawValue)
            ))
        }
    }

    struct CatalogBody: Encodable {
        let providers: [ProviderDefinition]
        let categories: [String]
        let modalities: [String]
    }
}
