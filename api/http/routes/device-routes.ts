import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import QRCode from "qrcode";
import { z } from "zod";
import type { DeviceService } from "../../devices/device-service.js";
import type { Store } from "../../store/store.js";
import { requireScope } from "../auth.js";
import { ApiError } from "../errors.js";
import {
  createDeviceBody,
  createPublisherBody,
  createdPublisher,
  deviceList,
  deviceView,
  errorBody,
  idParams,
  provisionedDevice,
  publisherList,
  qrQuery,
} from "../schemas.js";

export const deviceRoutes: FastifyPluginAsyncZod<{ devices: DeviceService; store: Store }> = async (app, { devices, store }) => {
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "admin"));
  const notFound = (id: string) => new ApiError(404, "not_found", `no device with id ${id}`);

  app.post(
    "/v1/devices",
    { schema: { summary: "Register a phone as a sending device (token shown once)", tags: ["devices"], body: createDeviceBody, response: { 201: provisionedDevice, 400: errorBody } } },
    async (request, reply) => {
      const { device, token, ...provisioning } = await devices.create(request.body);
      const { tokenDigest: _digest, ...shown } = device;
      return reply.status(201).send({ ...shown, token, ...provisioning });
    },
  );

  app.get("/v1/devices", { schema: { summary: "Devices with their presence", tags: ["devices"], response: { 200: deviceList } } }, async () => ({
    devices: await devices.list(),
  }));

  app.get(
    "/v1/devices/:id",
    { schema: { summary: "One device with its presence", tags: ["devices"], params: idParams, response: { 200: deviceView, 404: errorBody } } },
    async (request) => (await devices.get(request.params.id)) ?? Promise.reject(notFound(request.params.id)),
  );

  app.delete(
    "/v1/devices/:id",
    { schema: { summary: "Remove a device; its connection is closed at once", tags: ["devices"], params: idParams, response: { 204: z.null(), 404: errorBody } } },
    async (request, reply) => {
      if (!(await devices.delete(request.params.id))) throw notFound(request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    "/v1/devices/:id/token",
    { schema: { summary: "Issue a new token (the old one stops working)", tags: ["devices"], params: idParams, response: { 200: provisionedDevice, 404: errorBody } } },
    async (request) => {
      const rotated = await devices.rotateToken(request.params.id);
      if (!rotated) throw notFound(request.params.id);
      const { device, token, ...provisioning } = rotated;
      const { tokenDigest: _digest, ...shown } = device;
      return { ...shown, token, ...provisioning };
    },
  );

  app.get(
    "/v1/devices/:id/qr",
    {
      schema: {
        summary: "The provisioning URI as a QR code (PNG or SVG); needs the device's token, which the server does not keep",
        tags: ["devices"],
        params: idParams,
        querystring: qrQuery,
      },
    },
    async (request, reply) => {
      const provisioning = await devices.provisioningFor(request.params.id, request.query.token);
      if (!provisioning) throw new ApiError(404, "not_found", "no device with that id and token");
      reply.header("cache-control", "no-store");
      if (request.query.format === "svg") {
        return reply.type("image/svg+xml").send(await QRCode.toString(provisioning.provisioning, { type: "svg", errorCorrectionLevel: "M" }));
      }
      return reply.type("image/png").send(await QRCode.toBuffer(provisioning.provisioning, { type: "png", errorCorrectionLevel: "M", width: 512 }));
    },
  );

  app.post(
    "/v1/publishers",
    { schema: { summary: "Credentials for a system that publishes SMS jobs over MQTT", tags: ["publishers"], body: createPublisherBody, response: { 201: createdPublisher, 409: errorBody } } },
    async (request, reply) => {
      const created = await devices.createPublisher(request.body.name);
      if (!created) throw new ApiError(409, "conflict", `a publisher named ${request.body.name} exists`);
      const { id, name, createdAt } = created.publisher;
      return reply.status(201).send({ id, name, createdAt, mqtt: { username: name, password: created.token } });
    },
  );

  app.get("/v1/publishers", { schema: { summary: "MQTT publishers", tags: ["publishers"], response: { 200: publisherList } } }, async () => ({
    publishers: (await store.listPublishers()).map(({ id, name, createdAt }) => ({ id, name, createdAt })),
  }));

  app.delete(
    "/v1/publishers/:id",
    { schema: { summary: "Remove a publisher; its connections are closed at once", tags: ["publishers"], params: idParams, response: { 204: z.null(), 404: errorBody } } },
    async (request, reply) => {
      if (!(await devices.deletePublisher(request.params.id))) throw new ApiError(404, "not_found", `no publisher with id ${request.params.id}`);
      return reply.status(204).send(null);
    },
  );
};
