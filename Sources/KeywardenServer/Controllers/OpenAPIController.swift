import Foundation
import Hummingbird
import NIOCore

/// `GET /openapi.yaml`: the OpenAPI 3.1 document of every route, shipped as a resource.
struct OpenAPIController {
    func addRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("/openapi.yaml") { _, _ -> Response in
            guard let document = OpenAPIDocument.text else {
                throw APIError(.internalServerError, code: "openapi_missing", message: "The OpenAPI document is not bundled with this build.")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: document))
            )
        }
    }
}

/// The bundled OpenAPI document.
public enum OpenAPIDocument {
    /// The document's text, or `nil` if the resource bundle is missing.
    public static let text: String? = ServerResources.data("openapi.yaml").map { String(decoding: $0, as: UTF8.self) }
}
