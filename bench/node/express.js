// The Express backend of Proficient's docs, done properly: the Firebase ID token verified by
// firebase-admin, and the HMAC of the verified UID, never of an ID the caller sends.
'use strict';
const crypto = require('node:crypto');
const express = require('express');
const { initializeApp } = require('firebase-admin/app');
const { getAuth } = require('firebase-admin/auth');

const auth = getAuth(initializeApp());
const secret = process.env.PROFICIENT_HMAC_SECRET;

const app = express();
app.use(express.json());
app.post('/', async (req, res) => {
  const token = (req.get('Authorization') ?? '').replace(/^Bearer /, '');
  let uid;
  try {
    ({ uid } = await auth.verifyIdToken(token));
  } catch {
    res.status(401).json({ error: 'unauthenticated' });
    return;
  }
  const hmac = crypto.createHmac('sha256', secret).update(uid).digest('base64');
  res.json({ hmac, userExternalId: uid });
});
app.listen(Number(process.env.PORT ?? 8080));
