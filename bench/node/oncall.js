// The onCall function Firebase's docs lead a user to write: the HMAC of the verified caller's
// UID. firebase-functions verifies the ID token with firebase-admin before the handler runs.
'use strict';
const crypto = require('node:crypto');
const { onCall, HttpsError } = require('firebase-functions/https');
const { defineSecret } = require('firebase-functions/params');

const secret = defineSecret('PROFICIENT_HMAC_SECRET');

exports.proficientHmac = onCall({ secrets: [secret] }, (request) => {
  if (!request.auth) {
    throw new HttpsError('unauthenticated', 'Sign in first.');
  }
  const uid = request.auth.uid;
  const hmac = crypto.createHmac('sha256', secret.value()).update(uid).digest('base64');
  return { hmac, userExternalId: uid };
});
