// The reference implementation of the callable protocol, for the conformance suite
// (e2e/conformance.test.mjs): firebase-functions' own onCall, with the Go function's logic.
//
// The Functions emulator sets FIREBASE_DEBUG_FEATURES.skipTokenVerification, so onCall would
// only decode ID tokens there; production onCall verifies them. It is read per request, so
// removing it here makes the Admin SDK verify against the Auth emulator, as in production.
const debug = JSON.parse(process.env.FIREBASE_DEBUG_FEATURES || "{}");
delete debug.skipTokenVerification;
process.env.FIREBASE_DEBUG_FEATURES = JSON.stringify(debug);

const crypto = require("node:crypto");
const { initializeApp } = require("firebase-admin/app");
const { onCall, HttpsError } = require("firebase-functions/v2/https");

initializeApp();

// The e2e suite's demo secret (e2e/function.mjs).
const secret = "hsec_local_demo_secret";

exports.proficientHmac = onCall((request) => {
  if (!request.auth) {
    throw new HttpsError("unauthenticated", "Sign in first.");
  }
  const { uid } = request.auth;
  const data = request.data;
  if (data !== null && (typeof data !== "object" || Array.isArray(data))) {
    throw new HttpsError("invalid-argument", "The callable data must be null or a JSON object.");
  }
  const claimed = data?.userExternalId;
  if (claimed !== undefined && claimed !== null) {
    if (typeof claimed !== "string") {
      throw new HttpsError("invalid-argument", "userExternalId must be a string or null.");
    }
    if (claimed !== uid) {
      throw new HttpsError("permission-denied", "The HMAC is issued only for the signed-in user's UID.");
    }
  }
  return { hmac: crypto.createHmac("sha256", secret).update(uid).digest("base64"), userExternalId: uid };
});
