// Embeds texts through aift with the official openai-node client and its defaults
// (which ask for base64); prints what the client decoded, as JSON, for the test to check.
import OpenAI from "openai";

const [baseURL, model, ...texts] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
const response = await client.embeddings.create({ model, input: texts });
console.log(JSON.stringify({ vectors: response.data.map((item) => Array.from(item.embedding)) }));
