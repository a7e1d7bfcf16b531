// The Firebase Auth emulator's REST API: what `firebase emulators:exec` started, and the admin
// calls (Authorization: Bearer owner) the tests use to make and change users.
export const emulatorHost = process.env.FIREBASE_AUTH_EMULATOR_HOST;
export const project = process.env.GCLOUD_PROJECT;
if (!emulatorHost || !project) {
  throw new Error("run under `firebase emulators:exec --only auth` (make test does)");
}
const base = `http://${emulatorHost}/identitytoolkit.googleapis.com/v1`;

async function post(path, body, admin = false) {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(admin && { Authorization: "Bearer owner" }) },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// signUpAnonymously returns a fresh anonymous user's { idToken, localId }.
export const signUpAnonymously = () => post("/accounts:signUp?key=any", { returnSecureToken: true });

// createUser makes a user with a chosen UID (any UTF-8, as custom auth allows).
export const createUser = ({ uid, email, password }) =>
  post(`/projects/${project}/accounts`, { localId: uid, email, password }, true);

// signInWithPassword returns { idToken, localId } for an email and password user.
export const signInWithPassword = (email, password) =>
  post("/accounts:signInWithPassword?key=any", { email, password, returnSecureToken: true });

// userWithToken makes a password user with a display name and custom claims (an object, as
// setCustomUserClaims takes them) and returns { idToken, uid } of a fresh sign-in: the token
// carries both, as Firebase Auth issues it.
export async function userWithToken({ displayName, claims }) {
  const email = `user-${crypto.randomUUID()}@example.com`, password = "a-password-1";
  const { localId } = await post(`/projects/${project}/accounts`, { email, password, displayName }, true);
  if (claims) await post(`/projects/${project}/accounts:update`, { localId, customAttributes: JSON.stringify(claims) }, true);
  const { idToken } = await signInWithPassword(email, password);
  return { idToken, uid: localId };
}

export const disableUser = (uid) => post(`/projects/${project}/accounts:update`, { localId: uid, disableUser: true }, true);

// createSessionCookie returns a Firebase session cookie for an ID token, as firebase-admin's
// createSessionCookie asks the Auth backend for one (issuer https://session.firebase.google.com/P).
export const createSessionCookie = async (idToken) =>
  (await post(`/projects/${project}:createSessionCookie`, { idToken, validDuration: 3600 }, true)).sessionCookie;
