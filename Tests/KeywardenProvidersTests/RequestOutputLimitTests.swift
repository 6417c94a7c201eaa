import Foundation
import KeywardenCore
@testable import KeywardenProviders
import Testing

@Suite("Reading a request's output limit")
struct RequestOutputLimitTests {
    @Test("max_tokens and its siblings of each vendor, the largest when several; nothing from a non-object or a bad value")
    func outputLimits() {
        let cases: [(String, Int?)] = [
            (#"{"model":"gpt-4o","max_tokens":256,"messages":[]}"#, 256),
            (#"{"max_completion_tokens":1024}"#, 1024),
            (#"{"max_output_tokens":77,"input":"hi"}"#, 77),
            (#"{"contents":[],"generationConfig":{"maxOutputTokens":2048}}"#, 2048),
            (#"{"max_tokens":10,"max_completion_tokens":300}"#, 300),
            ("  \n" + #"{"max_tokens":64}"# + "\r\n", 64),
            (#"{"max_tokens":100,"n":3}"#, 300),
            (#"{"max_tokens":100,"n":100000}"#, 12_800),
            (#"{"max_tokens":100,"n":-2}"#, 100),
            (#"{"generation_config":{"max_output_tokens":512}}"#, 512),
            (#"{"max_tokens":-5}"#, nil),
            (#"{"max_tokens":"lots"}"#, nil),
            (#"{"max_tokens":99999999999999999999999}"#, nil),
            (#"{"messages":[]}"#, nil),
            (#"[{"max_tokens":5}]"#, nil),
            (#"{"max_tokens":5"#, nil),
            ("", nil),
        ]
        for (body, expected) in cases {
            #expect(RequestFacts.maxOutputTokens(body: Array(body.utf8)) == expected, "\(body)")
        }
    }

    @Test("the choices a request asks for: OpenAI's n, Gemini's candidateCount in either spelling; 1 to 128, with or without a limit")
    func choices() {
        let cases: [(String, Int?, Int)] = [
            (#"{"messages":[],"n":4}"#, nil, 4),
            (#"{"contents":[],"generationConfig":{"candidateCount":3}}"#, nil, 3),
            (#"{"contents":[],"generation_config":{"candidate_count":2,"max_output_tokens":10}}"#, 10, 2),
            (#"{"contents":[],"generationConfig":{"candidate_count":5,"maxOutputTokens":8}}"#, 8, 5),
            (#"{"n":0}"#, nil, 1),
            (#"{"n":-3}"#, nil, 1),
            (#"{"n":1000}"#, nil, 128),
            (#"{"n":"two"}"#, nil, 1),
            (#"{"messages":[]}"#, nil, 1),
        ]
        for (body, perChoice, choices) in cases {
            let limit = RequestFacts.outputLimit(body: Array(body.utf8))
            #expect(limit == RequestFacts.OutputLimit(perChoice: perChoice, choices: choices), "\(body)")
        }
        #expect(RequestFacts.outputLimit(body: Array("[]".utf8)) == nil)
    }
}
