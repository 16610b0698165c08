# pypx in a container: DCMTK and pypx installed by bootstrap.sh (the same install as the README's set-up).
#   podman build -t pypx .            (or docker build; --build-arg BASE=... for another Debian 12 base)
#   podman run --rm -v /data/pypx:/pypx pypx px-find --aec PACS --serverIP HOST --serverPort 104 --PatientID X
#   podman run --rm pypx --px-find ...                           (pypx 3's form)
# The BASEMOUNT is /pypx (database /pypx/log): mount a host folder there; run with --user UID:GID to
# write as that folder's owner. Nothing of the build host (pip or apt settings) is kept in the image.
ARG BASE=debian:bookworm
FROM ${BASE}

ENV PYPX_VENV=/opt/pypx \
    PYPX_DB=/pypx/log \
    PATH=/opt/pypx/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1

# Debian packages first (a layer that survives source changes), then pypx; apt's caches are dropped
COPY bootstrap.sh /src/bootstrap.sh
RUN /src/bootstrap.sh image-packages && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY pyproject.toml README.md /src/
COPY pypx /src/pypx
RUN /src/bootstrap.sh image && rm -rf /src/build /src/*.egg-info /root/.cache

COPY --chmod=0755 PACS_QR.sh /usr/local/bin/PACS_QR.sh
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/pypx-entrypoint
RUN useradd --create-home --uid 1000 --user-group pypx && install -d -o pypx -g pypx -m 0775 /pypx
USER pypx
WORKDIR /pypx
# px-listen's default port
EXPOSE 10402
ENTRYPOINT ["/usr/local/bin/pypx-entrypoint"]
CMD ["--help"]
